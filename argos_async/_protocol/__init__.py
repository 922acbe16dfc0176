"""The protocol's decisions, without I/O: bytes and values in, values or errors out.

Each module holds one concern and is tested alone, with no server:

- ``wire``: the API's hosts, paths, header names and limits;
- ``checks``: argument validation, each check naming its argument;
- ``masking``: emails and user ids reduced before any message, log or repr shows them;
- ``query``: a validated listing (``ListQuery``) and the resume cursor that carries its page key;
- ``decoding``: response bytes into Structs (one msgspec call per page), or a page's envelope
  scanned without building its items;
- ``status``: an error response (status, headers, body) into the exception it means, with its
  ``Retry-After`` read;
- ``secure``: secure transmission's cipher, parameters into one encrypted ``data`` and an
  encrypted answer back into its JSON (``cryptography`` imported only when it is switched on).

Which errors are retried, and how long to wait, is decided beside the retry loop
(``argos_async._retry``), not here.
"""
