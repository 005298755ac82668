"""The `ftpipe` commands (cli.py is the entry point); they may call the flow, the flow never calls them."""
