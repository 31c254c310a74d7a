"""The conversation engine and the application that assembles nlu, knowledge and connectors."""
