"""One module per way a question can end (see types.Outcome); answering/router.py chooses between them."""
