"""The names of GenRep's two tasks, defined once.

The model's ``parse_losses`` returns one loss per task under these keys and the gradient-alignment
optim wrapper (Eq. 11-16) reads them; the two must agree, so both import them from here.
"""
PERCEPTION = 'percept'
GENERATION = 'genera'
TASKS = (PERCEPTION, GENERATION)
