"""The relay: one browser conversation carried to an upstream realtime session and back."""
