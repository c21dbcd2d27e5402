"""The paper's experiments beside its method: the sweeps of Figs. 6-7 (``sweeps``), region
quality of Section 4.6 (``region_quality``), both run by ``--mode=experiments`` on a finished
evaluation's predictions (``runner``), with the per-image figures of a few test images
(``figures``: occlusion sensitivity and Grad-CAM from ``saliency``, Figs. 3, 4 and 9); the
hand-crafted baselines of Tables 2-3
(``handcrafted``: descriptors, encoders, registry; ``handcrafted_eval``: extraction over a pool,
encoder fitting, linear SVM scoring)."""
