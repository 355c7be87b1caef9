"""Recording both sides of a conversation as it passes through the relay.

`timeline` places audio on one clock (on the event loop, cheaply), `mixer` mixes the two sides and
`encoder` turns the mix into MP3 (both in a worker thread), and `recorder` runs them and hands
finished chunks to a store function (the relay passes one that writes through Django's storage API).
"""
