"""Batch job stores: which provider holds each batch file and job, and whose they are."""
