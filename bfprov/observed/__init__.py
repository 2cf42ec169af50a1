"""The observed state: the only reader of output directories and bfprov's records.

`files` reads single files without following links, `records` decodes bfprov's records,
`account` observes one account directory, `observe` the whole fleet; `gitcheck` asks git
whether an output directory would be committed.
"""
