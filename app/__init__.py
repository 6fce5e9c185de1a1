"""Crowdmade: community-funded commerce."""
