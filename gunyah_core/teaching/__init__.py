"""What the page teaches with: one caption per event kind, lessons with predict-then-reveal
questions, and the live invariants checked on every event. Reads the model, never
changes it.
"""
