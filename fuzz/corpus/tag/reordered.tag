s=yyafmGmQBNwI0u8i2JMlOtaW0C/pQwuA0c4fZDQShiM=; t=1795424400; k=k1; v=1
alice@xmpp.example
abcdefghijklmnopqrstuvwxyz
<m1@example.org>
alice@example.org