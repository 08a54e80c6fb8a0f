"""Notebook 05, evaluation: ``metrics`` (PSNR, SSIM, LMD, FD, intervals, tests), ``landmarks`` (the landmark
judge), ``scoring`` (every system scored, the paper's claims), ``rating`` (the user study's form)."""
