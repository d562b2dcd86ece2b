"""How every model backend samples: the in-process model and any server are sent the same values.

llama_cpp.server's own defaults differ from llama-cpp-python's in-process ones (a repeat penalty of 1.1
against 1.0), and greedy replies then differ too, so a server is sent all of them explicitly.
"""

SAMPLING = {"top_p": 0.9, "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.0}
