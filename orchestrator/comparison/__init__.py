"""Reading runs back and comparing them: backends and variants side by side, parity of the
training curves, the terminal tables.
"""
