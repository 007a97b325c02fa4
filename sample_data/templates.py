"""What the sample's tickets are made of: the system prompt, the templates per slice and intent with their urgency,
the non-English and spam templates, and the values their placeholders are filled with. ``generate.py`` writes the logs
from them; the offline teacher reads tickets back to them and writes new ones.
"""

from __future__ import annotations

SYSTEM = (
    "You triage customer support tickets. Answer with JSON only: "
    '{"intent": <one of the allowed intents>, "urgency": "low"|"medium"|"high"|"critical", "summary": <one sentence>}.'
)
# slice -> (share, {intent: (urgency, [templates])})
SLICES: dict[str, tuple[float, dict[str, tuple[str, list[str]]]]] = {
    "billing": (
        0.30,
        {
            "double_charge": (
                "high",
                [
                    "I was charged twice for order {order}, {amount} each time.",
                    "Why do I see two charges of {amount} on my card for {order}?",
                ],
            ),
            "refund_status": (
                "medium",
                [
                    "Where is my refund for order {order}? It has been {days} days.",
                    "I returned {product} {days} days ago and still no refund.",
                ],
            ),
            "invoice_request": (
                "low",
                ["Can you send me an invoice for order {order}?", "I need a VAT invoice for my purchase of {product}."],
            ),
            "payment_failed": (
                "medium",
                [
                    "My payment keeps failing at checkout for {product}.",
                    "Card declined when paying {amount}, but the bank says it's fine.",
                ],
            ),
        },
    ),
    "shipping": (
        0.22,
        {
            "late_delivery": (
                "medium",
                [
                    "My order {order} was due {days} days ago and hasn't arrived.",
                    "Where is my package? Tracking hasn't moved for {days} days.",
                ],
            ),
            "wrong_address": (
                "high",
                [
                    "I entered the wrong address for order {order}, please change it to {city}.",
                    "Order {order} is going to my old address in {city}!",
                ],
            ),
            "damaged_item": (
                "medium",
                ["The {product} arrived broken, the box was crushed.", "My {product} came damaged. Order {order}."],
            ),
        },
    ),
    "account": (
        0.16,
        {
            "password_reset": (
                "low",
                [
                    "I can't reset my password, the email never arrives.",
                    "Password reset link expired, how do I get a new one?",
                ],
            ),
            "update_details": (
                "low",
                [
                    "How do I change the email on my account to {name}@example.com?",
                    "Please update my phone number on file.",
                ],
            ),
            "close_account": (
                "medium",
                ["Please delete my account and all my data.", "I want to close my account, how?"],
            ),
        },
    ),
    "technical": (
        0.14,
        {
            "app_crash": (
                "high",
                [
                    "The app crashes every time I open my orders on {device}.",
                    "Your app closes right after login on my {device}.",
                ],
            ),
            "login_error": (
                "medium",
                ["I get error 500 when logging in.", "Login page just spins forever on {device}."],
            ),
            "feature_question": (
                "low",
                ["Does the app support dark mode on {device}?", "Can I export my order history to CSV?"],
            ),
        },
    ),
    "subscriptions": (
        0.09,
        {
            "cancel_subscription": (
                "medium",
                [
                    "Cancel my Plus subscription before it renews on the {days}th.",
                    "How do I stop the monthly charge of {amount}?",
                ],
            ),
            "upgrade_plan": (
                "low",
                ["I'd like to upgrade to the annual plan.", "What do I get with Premium compared to Plus?"],
            ),
        },
    ),
    "product_info": (
        0.08,
        {
            "availability": (
                "low",
                ["When will the {product} be back in stock?", "Is the {product} available in {city}?"],
            ),
            "specs_question": (
                "low",
                ["What is the battery life of the {product}?", "Is the {product} compatible with {device}?"],
            ),
        },
    ),
    "security": (
        0.01,
        {
            "account_takeover": (
                "critical",
                [
                    "Someone logged into my account from {city} and changed my email!",
                    "I didn't place order {order}, my account was hacked.",
                ],
            ),
            "phishing_report": (
                "high",
                [
                    "I got an email pretending to be you asking for my card number.",
                    "Is this text message about a refund of {amount} from you? Looks like phishing.",
                ],
            ),
        },
    ),
}
NON_EN = {
    "es": ("Me cobraron dos veces el pedido {order}.", "double_charge", "billing"),
    "de": ("Mein Paket {order} ist seit {days} Tagen überfällig.", "late_delivery", "shipping"),
    "fr": ("L'application plante sur mon {device}.", "app_crash", "technical"),
}
# Form spam that replaces records at fixed positions: (text, slice, intent, urgency).
SPAM = (
    "Automated form submission: order {order} status request. Reply to noreply@shop.example.",
    "shipping",
    "late_delivery",
    "low",
)
SUFFIXES = ["Please help.", "This is urgent.", "Thanks in advance.", "I've tried twice already."]
FILL = {
    "product": ["headphones", "smart watch", "coffee maker", "running shoes", "desk lamp", "blender", "backpack"],
    "city": ["Lisbon", "Austin", "Osaka", "Leeds", "Lyon", "Denver"],
    "device": ["iPhone 15", "Pixel 8", "iPad", "Galaxy S23"],
    "name": ["maria", "tom", "li.wei", "sam"],
}
INTENTS = sorted({i for _, (_, intents) in SLICES.items() for i in intents})
URGENCIES = ("low", "medium", "high", "critical")
