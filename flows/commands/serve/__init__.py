"""`ftpipe serve`: the resident HTTP server that follows a registry alias (command, app, follower, payload, reqlog)."""
