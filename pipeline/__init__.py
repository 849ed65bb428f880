"""The data path, framework-free: sources, clip windows, anchor store, time parsing, planning, timeline."""
