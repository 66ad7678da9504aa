"""The runtime: answers the LM API's verbs for one model from the memo, the plan and the scheduler, over a backend."""
