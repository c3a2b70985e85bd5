"""Importing a Rasa Open Source 3.x project as a Helpline bot project.

:func:`bot.rasa_import.convert.convert` reads a Rasa project (domain, NLU data,
rules, stories, forms, endpoints, config) and returns the files of a Helpline
project plus a :class:`bot.rasa_import.report.Report` of what converted and
what needs a human; :func:`bot.rasa_import.writer.write_project` writes them
atomically. The ``helpline import rasa`` verb lives in :mod:`bot.rasa_import.cli`.
"""
