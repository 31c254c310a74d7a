"""Human handoff: a conversation moves bot → waiting → with an agent → closed or back to the bot.

``wiring.install_handoff`` adds the policy, the actions and the paused-message hook to an ``Agent`` and returns the
service the staff console drives. The queue lives in SQL next to the trackers; every transition is also an event
in the conversation's tracker.
"""
