v=1; k=k1; t=1795424400; s=yyafmGmQBNwI0u8i2JMlOtaW0C/pQwuA0c4fZDQShiM=
alice@xmpp.example
abcdefghijklmnopqrstuvwxyz
<m1@example.org>
mallory@example.org