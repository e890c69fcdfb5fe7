"""The synthetic world and its data: the world's rules, the datasets built from it, the bag-of-words proxy."""
