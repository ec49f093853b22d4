"""Outbound networking: the lean HTTP/1.1 client and proxy tunnels every upstream call uses."""
