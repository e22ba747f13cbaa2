// The library missing_library_plugin needs; the test deletes it once the plugin is linked.
int weft_test_gone_function() { return 1; }
