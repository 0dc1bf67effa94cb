# cli/: yunguan, the command-line client.
