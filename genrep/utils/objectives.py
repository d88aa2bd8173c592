"""The names of GenRep's two objectives, L_percept (Eq. 5) and L_genera (Eq. 10), defined once.

The model's ``parse_losses`` returns one loss per objective under these keys and the
gradient-alignment optim wrapper (Eq. 11-16) reads them; the two must agree, so both import them
from here. (An objective, not a task: "task" names what the perception model does, docs/
architecture.md, Glossary.)
"""
PERCEPTION = 'percept'
GENERATION = 'genera'
OBJECTIVES = (PERCEPTION, GENERATION)
