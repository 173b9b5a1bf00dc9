"""Studies that measure one family with the others: prior desynchronisation and poisoning of the
knowledge base (``desync``, ``poisoning``), and Bob against Eve through the ciphers (``secrecy``).

They live above the families they study, so the knowledge base, the keys and the codecs import no
study and no evaluation code; each study talks to a :class:`~semguard.link.Link`."""
