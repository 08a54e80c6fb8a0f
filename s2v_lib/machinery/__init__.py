"""What the lessons use but do not teach: the SynthTalk corpus (``synthtalk``, ``espeak``, ``faces``), audio and
video I/O, face detection and ingestion of real corpora, the run directory (``runs``), the course runner, the
command line, plots (``viz``) and the demo form."""
