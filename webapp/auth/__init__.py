"""Log-in, log-out, roles for pages and bearer tokens for the API, users and tokens on the command line."""
