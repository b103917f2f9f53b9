"""Models: the book's networks, the cited ones counted at full size, and the peer."""
