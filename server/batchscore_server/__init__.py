"""batchscore_server: the reference server that implements ``openapi/batchscore.yaml``.

It is installed with the ``server`` extra (``pip install 'batchscore[server]'``) and never imports the SDK.
"""
