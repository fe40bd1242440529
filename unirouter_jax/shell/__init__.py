"""The imperative shell: the ``unirouter`` command, resumable work
directories, result files, tables and plots. Nothing below imports it.
"""
