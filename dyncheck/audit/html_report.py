"""placeholder"""
def render(report):
    return ""
