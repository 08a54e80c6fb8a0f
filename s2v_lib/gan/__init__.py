"""Notebook 04, the GAN: ``sync`` (the sync expert), ``generator``, ``discriminators`` (and the GAN's losses),
``train`` (the GAN step, the systems and ablations, checkpoints)."""
