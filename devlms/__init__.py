"""Development LMS: an edX-compatible OAuth2 provider and a course page that embeds Sifu like the XBlock.

For local runs and tests only. It is never put in the image, and it refuses to start unless
development mode is requested (`--dev` or DEVLMS_DEV_MODE=1).
"""
