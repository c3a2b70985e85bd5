"""Rasa NLU as a backend: a Rasa Open Source 3.6 server answering ``/model/parse``.

Rasa 3.6 runs on Python 3.10 with TensorFlow, so it lives in ``.venv-rasa``
(``make setup-rasa``) and Helpline only ever talks to it over HTTP:

- :mod:`bot.nlu.rasa.project` writes a Rasa project from the bot's NLU data,
- :mod:`bot.nlu.rasa.train` runs ``rasa train nlu``, cached by content hash,
- :mod:`bot.nlu.rasa.server` runs ``rasa run --enable-api`` as a sidecar,
- :mod:`bot.nlu.rasa.client` parses through it, falling back to the
  embedded NLU whenever Rasa is slow or down.
"""
