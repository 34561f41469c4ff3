"""The pinned charts themselves: the local chart cache, Helm's own renderer, and what the renders prove.

`render` would be the natural name, but `shipway.render` already means Shipway's own objects;
this package is about what the third-party charts make of Shipway's values.
"""
