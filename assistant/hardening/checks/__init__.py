"""One module per hardening check, each a function of the Rig returning a Figure."""
