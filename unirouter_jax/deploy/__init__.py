"""The deployable router: state, fit, add/remove an LLM, route, calibrate a
cost weight, its deferral curve, and save/load (orbax). Imports ``core``,
``estimators`` and ``evaluation`` (the K-selection rule of method.md 2.4).
"""
