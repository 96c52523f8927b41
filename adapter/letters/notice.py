"""placeholder"""

def detect(text: str) -> bool:
    return False

def parse(text: str):
    raise NotImplementedError
