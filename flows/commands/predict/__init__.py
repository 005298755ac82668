"""`ftpipe predict`: the command and its loop, the input, the model version, the output's parts."""
