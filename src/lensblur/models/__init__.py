"""Torch modules of the learned systems (torch is imported only inside these modules).

``megadepth``: the MegaDepth single-view depth hourglass (Li & Snavely 2018), loadable from the
authors' released checkpoint and shared as the backbone of DBSI.
"""
