"""Pages that several domains fill: the home page, the ideas list, the idea page, a member's
profile. A domain's own routes show its own data only; these compose the domains' services (and
the reactions': comments, follows, views) from one layer above them all."""
