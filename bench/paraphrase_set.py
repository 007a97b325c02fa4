"""A labelled paraphrase set for the dedupe benchmark, written for this project.

Each group is one request said several ways (typos, greetings, reordering, synonyms): pairs inside a group are
duplicates. Groups deliberately come in near-miss families (same template, another product, number or
intent), so pairs across groups are hard negatives.
"""

from __future__ import annotations

GROUPS: list[list[str]] = [
    [
        "I was charged twice for order #48213.",
        "Hi, I got billed two times for order #48213.",
        "Why was my card charged twice for order #48213?",
    ],
    ["I was charged twice for order #77120.", "My card got charged two times for order #77120, please fix."],
    ["I was charged twice for my subscription this month.", "I got billed two times for my subscription this month"],
    [
        "The headphones arrived broken, the box was crushed.",
        "Hi, the headphones came broken and the box was crushed.",
        "The headphones arrived borken, box was crushed",
    ],
    ["The smart watch arrived broken, the box was crushed.", "My smart watch came damaged, the package was crushed."],
    ["The blender arrived broken, the box was crushed.", "Hello, the blender arrived broken, the box was all crushed."],
    ["How do I reset my password?", "How can I reset my password?", "how do i reset my pasword"],
    ["I can't log in, it says my password is wrong.", "I cannot sign in because it says the password is incorrect."],
    ["The two-factor code never arrives by SMS.", "I never receive the 2FA code by text message."],
    ["My account got locked after too many attempts.", "My account is locked because I tried too many times."],
    [
        "Where is my refund for order #51234? It has been 10 days.",
        "It's been 10 days, where is the refund for order #51234?",
    ],
    ["Where is my refund for order #90877? It has been 3 days.", "Still no refund for order #90877 after 3 days."],
    ["Can I change the delivery address for order #33321?", "I need to change the shipping address on order #33321."],
    ["Do you ship to Norway?", "Can you deliver to Norway?", "Is shipping to Norway possible?"],
    ["Do you ship to Japan?", "Can you deliver orders to Japan?"],
    ["Please cancel my subscription.", "I want to cancel my subscription please.", "Cancel my subscription, thanks."],
    [
        "How do I upgrade to the annual plan?",
        "I'd like to switch to the yearly plan.",
        "Can I upgrade to annual billing?",
    ],
    ["How do I downgrade to the free plan?", "I want to move down to the free tier."],
    [
        "The app crashes every time I open my orders on iPad.",
        "The app keeps crashing when I open my orders on my iPad.",
    ],
    ["The app crashes every time I open my orders on Android.", "On Android the app crashes whenever I open orders."],
    ["Someone logged into my account from another country.", "There was a login to my account from abroad, not me."],
    ["I think my API key leaked on GitHub.", "My API key may have been exposed in a public GitHub repo."],
    ["Is the blender dishwasher safe?", "Can I put the blender in the dishwasher?"],
    ["Is the backpack waterproof?", "Does the backpack keep water out?"],
    ["What is the warranty on the smart watch?", "How long is the smart watch warranty?"],
    ["Can I get an invoice with my VAT number?", "Please add my VAT number to the invoice."],
    ["My discount code SAVE20 does not work.", "The promo code SAVE20 is not accepted at checkout."],
    ["My discount code WELCOME10 does not work.", "WELCOME10 code isn't working at checkout."],
    ["The tracking number for order #60001 shows no updates.", "Tracking for order #60001 hasn't updated at all."],
    ["I received the wrong size for order #60450.", "Order #60450 came in the wrong size."],
]
