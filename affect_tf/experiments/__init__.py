"""Experiments beside the paper's method: the hand-crafted baselines of Tables 2-3
(``handcrafted``: descriptors, encoders, registry; ``handcrafted_eval``: extraction over a pool,
encoder fitting, linear SVM scoring)."""
