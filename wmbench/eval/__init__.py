"""Evaluation of world models and agents, one module per task kind.

==================  ==========================================================================
``api``             ``wmbench.evaluate``: goal reaching as one call, on a module in memory (during
                    training) or a checkpoint, returning an ``EvalResult``
``goal_reaching``   model-predictive control from frozen start/goal pairs (Push-T, Two-Room,
                    Reacher, Cube): success rate, planning time
``controllers``     what plans in that loop: a world model, the true simulator (oracle), random
``comparison``      two goal-reaching runs on the same pairs: paired difference, bootstrap
                    interval, exact McNemar test (``wmbench compare``)
``puzzles``         PHYRE-style puzzles: up to 100 ranked attempts per task, scored by AUCCESS
``puzzle_agent``    the world-model agent of the puzzles: candidate balls ranked by a probe on
                    predicted latents, and its score maps
``videos``          passive CLEVRER-style videos: prediction error, probes, question answering
``voe``             violation of expectation: surprise at teleports and recolors, next to a
                    null that learned nothing
``models``          a checkpoint made ready for an evaluation: loaded, checked against the env,
                    described for the results
``results``         the results documents: schemas, the shared header, the printed summary
==================  ==========================================================================
"""
