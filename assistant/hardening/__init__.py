"""`jxa hardening`: load, faults and hostile input against the real server, measured.

Each check (one module under checks/) returns a Figure (what was measured, and what failed) and the
command (command.py) prints them:

  (a) load.py          concurrent sessions through the HTTP API: latency, failed/dropped requests, overlapping model calls
  (b) burst.py         a burst of 3x the queue: every rejection a 503 with Retry-After, no other 5xx, time to recover
  (c) faults.py        the model killed mid-reply or stalled past llm_timeout_s: still a cited extractive answer, on time
  (d) injection.py     injection probes, direct (EN/ZH) and indirect (a poisoned document in a temporary corpus):
                       canary leaks and followed instructions
  (e) malformed.py     malformed requests: no 5xx, each a JSON 4xx or a bounded answer; files outside the app refused
  (f) index_kill.py    an index build SIGKILLed at five stages: the previous index still loads, unchanged
  (g) memory.py        sequential requests: resident memory growth per request
  (h) records_kill.py  a consultation-record writer SIGKILLed after commits: no committed record lost
  (i) probes.py        the outside probe's attacks: unused Gradio routes, password guessing, chunked
                       bodies, cross-site questions, personal data kept, and the low findings

With --fake the model is `fake-timed` and the embedder `fake-lexical` (assistant.testing.fakes,
registered by the command); without it the real default models run, on fewer requests. The corpus is
always a temporary copy of the seeds plus the two poisoned documents of payloads.py, indexed into a
temporary folder (rig.py). A new check is a module under checks/ and a letter in command.py.
"""
