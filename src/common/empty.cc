// Lets a module without sources yet still form a library.
