"""Recorded traffic: the replay record format and reader, the answer a recording stands
for (shaped as OpenAI shapes it), and what a learner proposes from recordings.

At the bottom of the layers so the replay provider, the test upstream, the learners
(routing predictor, cascade verifier) and the tuner all share one definition.
"""
