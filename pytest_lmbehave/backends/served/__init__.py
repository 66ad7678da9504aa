"""backends.served"""
