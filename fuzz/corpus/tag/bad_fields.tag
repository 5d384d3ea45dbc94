v=2; k=nokey; t=-5; s=AAAA



