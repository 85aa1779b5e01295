"""One module (or small package) per region of the screen."""
