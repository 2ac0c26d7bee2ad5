#!/usr/bin/env python3
"""Writes the relevance test set of `pull search`: corpus.tsv and queries.tsv beside it.

The corpus mixes hand-written records (the ones queries are about, keys "n-...") with
background records generated from templates in English, German, French and Spanish
(keys "b-NNNN"): the same skills, places and phrasings again and again, with accents,
plurals and inflections, in offers and needs, so that every query word matches hundreds
of records and only ranking brings the right ones up. Near-duplicates of the hand-written
records (another town, the other kind, an older copy) sit in the background too.

Each query names the records that must be among its first 3 results ("must") and, for
nDCG, others that are also relevant ("also"). Queries carry the failures people meet:
case and accents (CAFÉ, strasse), plurals and inflections (bicycles, Fahrräder, écoles,
bicicletas), typos (mentr, rsut, guitr), need-phrased queries that want offers, and the
filters (--kind, --tag).

Deterministic: the same script writes the same files (random.Random with a fixed seed).
Run it after changing it, and commit both outputs:  python3 tests/relevance/gen.py
"""
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
R = random.Random(20240611)

# ---- background --------------------------------------------------------------------------

SKILLS = {
    "en": [
        ("bicycle repair", "bike repair"), ("guitar lessons", "guitar"), ("piano lessons", "piano"),
        ("maths tutoring", "math tutoring"), ("moving help", "moving"), ("garden work", "garden"),
        ("English conversation", "english"), ("babysitting", "kids"), ("dog walking", "pets"),
        ("sourdough baking", "baking"), ("Python programming", "python"), ("Rust programming", "rust"),
        ("tax paperwork", "tax"), ("photography", "photo"), ("knitting", "craft"),
        ("plumbing repairs", "plumbing"), ("car sharing", "car"), ("a spare room", "housing"),
        ("yoga classes", "yoga"), ("chess coaching", "chess"), ("CV proofreading", "writing"),
        ("electronics repair", "electronics"), ("sewing lessons", "sewing"), ("a drill", "tools"),
    ],
    "de": [
        ("Fahrradreparatur", "fahrrad"), ("Gitarrenunterricht", "gitarre"), ("Klavierunterricht", "klavier"),
        ("Nachhilfe in Mathe", "nachhilfe"), ("Umzugshilfe", "umzug"), ("Gartenarbeit", "garten"),
        ("Deutschkurs für Anfänger", "deutsch"), ("Kinderbetreuung", "kinder"), ("Hundesitter", "hunde"),
        ("Brot backen", "backen"), ("Steuererklärung", "steuern"), ("Fotografie", "foto"),
        ("Reparaturen im Haushalt", "reparatur"), ("Mitfahrgelegenheit", "auto"), ("ein freies Zimmer", "wohnen"),
        ("Yogakurse", "yoga"), ("Schachtraining", "schach"), ("Nähkurse", "naehen"),
    ],
    "fr": [
        ("réparation de vélos", "velo"), ("cours de guitare", "guitare"), ("cours de piano", "piano"),
        ("soutien en mathématiques", "maths"), ("aide au déménagement", "demenagement"), ("jardinage", "jardin"),
        ("cours de français", "francais"), ("garde d'enfants", "enfants"), ("promenade de chiens", "chiens"),
        ("pâtisserie maison", "patisserie"), ("déclaration d'impôts", "impots"), ("photographie", "photo"),
        ("petites réparations", "bricolage"), ("covoiturage", "voiture"), ("une chambre libre", "logement"),
        ("cours de yoga", "yoga"), ("échecs", "echecs"), ("couture", "couture"),
    ],
    "es": [
        ("reparación de bicicletas", "bicicleta"), ("clases de guitarra", "guitarra"), ("clases de piano", "piano"),
        ("clases de matemáticas", "matematicas"), ("ayuda con la mudanza", "mudanza"), ("jardinería", "jardin"),
        ("clases de español", "espanol"), ("cuidado de niños", "ninos"), ("paseo de perros", "perros"),
        ("pan casero", "pan"), ("declaración de la renta", "impuestos"), ("fotografía", "foto"),
        ("reparaciones en casa", "reparaciones"), ("coche compartido", "coche"), ("una habitación libre", "vivienda"),
        ("clases de yoga", "yoga"), ("ajedrez", "ajedrez"), ("costura", "costura"),
    ],
}
CITIES = {
    "en": ["London", "Manchester", "Bristol", "Dublin", "Leeds", "Glasgow", "Lyon", "Berlin", "online"],
    "de": ["Berlin", "München", "Köln", "Hamburg", "Leipzig", "Wien", "Zürich", "Düsseldorf", "online"],
    "fr": ["Paris", "Lyon", "Marseille", "Toulouse", "Nantes", "Bordeaux", "Genève", "Lille", "en ligne"],
    "es": ["Madrid", "Sevilla", "Barcelona", "Valencia", "Bilbao", "Málaga", "Zaragoza", "Granada", "en línea"],
}
OFFER = {
    "en": ["I can offer {s} in {c}", "{S} in {c}, free", "Happy to help with {s} ({c})", "Offering {s} in {c}",
           "Experienced with {s}, {c}"],
    "de": ["Biete {s} in {c}", "{S} in {c} – kostenlos", "Ich helfe gern bei {s} ({c})", "Erfahrung mit {s}, {c}"],
    "fr": ["Je propose {s} à {c}", "{S} à {c}, gratuit", "Disponible pour {s} ({c})", "Propose {s} sur {c}"],
    "es": ["Ofrezco {s} en {c}", "{S} en {c}, gratis", "Puedo ayudar con {s} ({c})", "Se ofrece {s} en {c}"],
}
NEED = {
    "en": ["Looking for {s} in {c}", "Need {s} ({c})", "Anyone offering {s} near {c}?", "Searching for {s}, {c}"],
    "de": ["Suche {s} in {c}", "Brauche {s} ({c})", "Wer kann bei {s} helfen? {c}", "Gesucht: {s} in {c}"],
    "fr": ["Cherche {s} à {c}", "Besoin de {s} ({c})", "Quelqu'un pour {s} vers {c} ?", "Recherche {s}, {c}"],
    "es": ["Busco {s} en {c}", "Necesito {s} ({c})", "¿Alguien para {s} en {c}?", "Se busca {s} en {c}"],
}
SENTENCES = {
    "en": ["Weekends work best for me.", "I have done this for years and enjoy sharing it.",
           "Happy to meet in a cafe or over video.", "No payment needed, a coffee or a swap is welcome.",
           "Beginners are very welcome.", "Evenings after work are fine.", "It usually takes about two hours.",
           "I can lend the tools if you prefer to do it yourself.", "Ideally before the end of the month.",
           "References from earlier exchanges are on my profile."],
    "de": ["Am besten am Wochenende.", "Ich mache das seit Jahren und teile es gern.",
           "Wir können uns im Café treffen oder per Video.", "Keine Bezahlung nötig, ein Kaffee reicht.",
           "Anfänger sind herzlich willkommen.", "Abends nach der Arbeit passt gut.",
           "Es dauert meistens zwei Stunden.", "Werkzeug kann ich leihen.", "Am liebsten noch diesen Monat."],
    "fr": ["Le week-end me convient le mieux.", "Je le fais depuis des années et j'aime partager.",
           "On peut se retrouver dans un café ou en visio.", "Pas besoin de payer, un café suffit.",
           "Les débutants sont les bienvenus.", "Le soir après le travail, c'est possible.",
           "Cela prend environ deux heures.", "Je peux prêter les outils.", "Idéalement avant la fin du mois."],
    "es": ["Los fines de semana me vienen mejor.", "Lo hago desde hace años y me gusta compartirlo.",
           "Podemos quedar en una cafetería o por vídeo.", "No hace falta pagar, con un café basta.",
           "Los principiantes son bienvenidos.", "Por las tardes después del trabajo.",
           "Suele llevar unas dos horas.", "Puedo prestar las herramientas.", "Idealmente antes de fin de mes."],
}
TERMS = {"en": ["", "", "a coffee", "swap", "pay what you want"],
         "de": ["", "", "ein Kaffee", "Tausch", "nach Wunsch"],
         "fr": ["", "", "un café", "échange", "prix libre"],
         "es": ["", "", "un café", "intercambio", "la voluntad"]}


def background(n):
    recs = []
    langs = ["en"] * 40 + ["de"] * 20 + ["fr"] * 20 + ["es"] * 20
    for i in range(n):
        lang = R.choice(langs)
        skill, tag = R.choice(SKILLS[lang])
        city = R.choice(CITIES[lang])
        kind = "offer" if R.random() < 0.55 else "need"
        tpl = R.choice(OFFER[lang] if kind == "offer" else NEED[lang])
        title = tpl.format(s=skill, S=skill[0].upper() + skill[1:], c=city)
        body = " ".join(R.sample(SENTENCES[lang], R.randint(1, 4)))
        tags = [tag]
        if R.random() < 0.5:
            tags.append(city.lower().replace(" ", "-").replace("ü", "u").replace("ö", "o"))
        if lang != "en" and R.random() < 0.8:  # some records don't say their language
            tags.append("lang-" + lang)
        recs.append(("b-%04d" % i, kind, lang, R.randint(0, 60), title, body, " ".join(tags),
                     R.choice(TERMS[lang])))
    return recs


# ---- hand-written records ----------------------------------------------------------------
# (key, kind, lang, age in days, title, body, tags, terms)

N = [
    # English
    ("n-bike-villeurbanne", "offer", "en", 3, "Bicycle repair in Villeurbanne",
     "I fix flat tyres, brakes and gears on most bicycles. Bring your bike to my garage on Saturdays.",
     "bike repair", ""),
    ("n-bike-villeurbanne-old", "offer", "en", 55, "Bicycle repair in Villeurbanne",
     "Flat tyres and brakes fixed. Saturdays only.", "bike repair", ""),
    ("n-bike-need-villeurbanne", "need", "en", 2, "Looking for someone to repair my bicycle in Villeurbanne",
     "My bike has a broken chain and a flat tyre.", "bike", ""),
    ("n-rust-mentor", "offer", "en", 5, "Rust mentor for beginners",
     "Weekly video calls to learn Rust: ownership, borrowing, traits and async. I mentored five people last year.",
     "rust programming", "a coffee"),
    ("n-rust-mentor-need", "need", "en", 1, "Looking for a Rust mentor",
     "I know some Python and want to learn Rust properly.", "rust", ""),
    ("n-cafe-english", "offer", "en", 8, "Café conversation club for English learners",
     "Every Thursday at the Café Lumière we practise English over a drink.", "english language", ""),
    ("n-sourdough-starter", "offer", "en", 4, "Sourdough starter to give away",
     "My starter is 6 years old and very lively. Bring a clean jar.", "baking food", "free"),
    ("n-ukulele-offer", "offer", "en", 6, "Ukulele lessons in Kreuzberg",
     "Patient teacher, all ages. I also lend ukuleles to beginners.", "music ukulele", ""),
    ("n-ukulele-need", "need", "en", 2, "Looking for a ukulele teacher in Kreuzberg",
     "Complete beginner, evenings preferred.", "music", ""),
    ("n-3d-printer", "offer", "en", 10, "3D printer available for small prints",
     "Prusa printer, PLA and PETG. You bring the model file, I print it.", "3d-print maker", ""),
    ("n-tax-freelancer", "offer", "en", 12, "Help with freelancer tax returns",
     "Former accountant, I explain self-assessment and expenses for freelancers.", "tax finance", ""),
    ("n-wheelchair-ramp", "need", "en", 3, "Need a portable wheelchair ramp for two weeks",
     "For my grandmother's visit. Happy to pay for any damage.", "accessibility", ""),
    ("n-kayak-lend", "offer", "en", 9, "Lending two kayaks on the Saône",
     "Sit-on-top kayaks with paddles and life jackets.", "outdoor water", ""),
    ("n-beekeeping", "offer", "en", 15, "Beekeeping mentoring for new beekeepers",
     "I keep twelve hives and can mentor you through your first season.", "bees garden", ""),
    ("n-cv-review", "offer", "en", 7, "CV and cover letter review",
     "Recruiter for ten years: I review CVs and cover letters in English and French.", "writing jobs", ""),
    ("n-mentoring-women-tech", "offer", "en", 11, "Mentoring women moving into tech",
     "Career mentoring, interview practice and code reviews for women changing careers.", "mentoring career", ""),
    ("n-violin-repair", "offer", "en", 20, "Violin repairs and bow rehairing",
     "Luthier, cracks and bridges repaired.", "music repair", ""),
    ("n-moving-boxes", "offer", "en", 1, "Forty moving boxes to give away",
     "Sturdy boxes, used once.", "moving free", "free"),
    ("n-spanish-tandem", "need", "en", 4, "Spanish tandem partner wanted",
     "Native English speaker, I would like to practise Spanish and help you with English.", "language spanish", ""),
    ("n-accessibility-audit", "offer", "en", 14, "Website accessibility audits",
     "I check websites against WCAG and explain the fixes.", "web accessibility", ""),
    ("n-electrician", "need", "en", 2, "Electrician needed to check old wiring",
     "Flat built in 1960, the wiring worries me.", "house electricity", ""),
    ("n-chess-kids", "offer", "en", 9, "Chess club for kids on Wednesdays",
     "Children from 7 to 12, all levels.", "chess kids", ""),
    ("n-telescope", "offer", "en", 13, "Telescope nights in the countryside",
     "I bring my Dobsonian telescope, you bring warm clothes.", "astronomy outdoor", ""),
    ("n-climbing-partner", "need", "en", 3, "Climbing partner for indoor bouldering",
     "Intermediate level, weekday evenings.", "climbing sport", ""),
    ("n-bread-oven", "offer", "en", 16, "Wood-fired bread oven to share",
     "Bake your loaves in my wood-fired oven on Sundays.", "baking food", ""),
    ("n-python-debug", "offer", "en", 5, "Python debugging sessions",
     "Stuck on a bug? Share your screen and we debug it together.", "python programming", ""),
    ("n-translation-legal", "offer", "en", 17, "Legal translations German to English",
     "Contracts, leases and certificates translated.", "translation german", ""),
    ("n-lawnmower", "offer", "en", 6, "Lawnmower to lend",
     "Electric lawnmower, cable 20 m.", "garden tools", ""),
    # German
    ("n-de-fahrrad", "offer", "de", 4, "Fahrräder reparieren in Ehrenfeld",
     "Ich repariere Fahrräder aller Art: Bremsen, Schaltung, Platten.", "fahrrad lang-de", ""),
    ("n-de-hauptstrasse", "offer", "de", 6, "Zimmer frei in der Hauptstraße",
     "Möbliertes Zimmer, 14 m², ab sofort, nahe Hauptbahnhof.", "wohnen lang-de", ""),
    ("n-de-nachhilfe-latein", "offer", "de", 8, "Nachhilfe in Latein für Schüler",
     "Lateinlehrerin im Ruhestand gibt Nachhilfe für die Klassen 7 bis 12.", "nachhilfe latein lang-de", ""),
    ("n-de-umzug-schwabing", "need", "de", 2, "Umzugshelfer für Samstag gesucht",
     "Umzug von Schwabing nach Giesing, zwei Stunden, Pizza inklusive.", "umzug lang-de", ""),
    ("n-de-imkerei", "offer", "de", 12, "Honig aus eigener Imkerei",
     "Blütenhonig und Waldhonig, Gläser bitte zurückbringen.", "honig lang-de", ""),
    ("n-de-lastenrad", "offer", "de", 5, "Lastenrad zum Ausleihen",
     "Elektrisches Lastenrad für Einkäufe und Umzüge, tageweise.", "fahrrad lang-de", ""),
    ("n-de-strickkurs", "offer", "de", 9, "Strickkurs für Anfängerinnen",
     "Wir stricken Schals und Mützen, Wolle ist vorhanden.", "handarbeit lang-de", ""),
    ("n-de-geige", "need", "de", 3, "Suche gebrauchte Geige für mein Kind",
     "Größe 3/4, gerne mit Bogen und Koffer.", "musik lang-de", ""),
    ("n-de-kaffeemaschine", "need", "de", 1, "Wer repariert Kaffeemaschinen?",
     "Meine Siebträgermaschine tropft.", "reparatur lang-de", ""),
    ("n-de-gruss", "offer", "de", 10, "Grüße aus der Großstadt: Stadtführungen",
     "Führungen durch die Altstadt und die Straßen am Fluss.", "stadt lang-de", ""),
    # French
    ("n-fr-cafe-philo", "offer", "fr", 5, "Café philo à Montmartre",
     "Chaque dimanche, on discute de philosophie autour d'un café.", "philosophie lang-fr", ""),
    ("n-fr-ecoles", "offer", "fr", 7, "Soutien scolaire pour les écoles primaires",
     "Institutrice, j'aide les enfants des écoles du quartier pour les devoirs.", "enfants ecole lang-fr", ""),
    ("n-fr-velo-croix-rousse", "offer", "fr", 3, "Réparation de vélos à la Croix-Rousse",
     "Crevaisons, freins et dérailleurs. Atelier ouvert le samedi.", "velo lang-fr", ""),
    ("n-fr-couture", "need", "fr", 2, "Cherche machine à coudre à emprunter",
     "Pour faire des rideaux, une semaine suffit.", "couture lang-fr", ""),
    ("n-fr-potager", "offer", "fr", 11, "Partage de potager à Belleville",
     "Un coin de mon jardin pour vos tomates et courgettes.", "jardin lang-fr", ""),
    ("n-fr-creme-brulee", "offer", "fr", 6, "Cours de pâtisserie : crème brûlée et éclairs",
     "Ancienne pâtissière, je vous apprends les classiques.", "patisserie lang-fr", ""),
    ("n-fr-demenagement", "need", "fr", 1, "Aide pour déménager un piano",
     "Troisième étage sans ascenseur, il faut quatre personnes.", "demenagement lang-fr", ""),
    ("n-fr-oeuvre", "offer", "fr", 14, "Visite des œuvres du musée",
     "Guide bénévole, je présente les œuvres majeures.", "culture lang-fr", ""),
    ("n-fr-anglais", "offer", "fr", 8, "Conversation en anglais pour lycéens",
     "Professeure d'anglais, je prépare les lycéens au bac.", "anglais lang-fr", ""),
    # Spanish
    ("n-es-bicis", "offer", "es", 4, "Arreglo bicicletas en Triana",
     "Pinchazos, frenos y cambios. Taller abierto los sábados.", "bicicleta lang-es", ""),
    ("n-es-guitarra", "offer", "es", 6, "Clases de guitarra flamenca en Malasaña",
     "Profesor con veinte años de experiencia, todos los niveles.", "guitarra musica lang-es", ""),
    ("n-es-canguro", "need", "es", 2, "Busco canguro para dos niños",
     "Martes y jueves por la tarde en Gràcia.", "ninos lang-es", ""),
    ("n-es-huerto", "offer", "es", 9, "Huerto urbano compartido en Lavapiés",
     "Parcelas pequeñas para cultivar tomates y pimientos.", "jardin lang-es", ""),
    ("n-es-paella", "offer", "es", 7, "Taller de paella valenciana",
     "Aprende a cocinar una paella auténtica con leña.", "cocina lang-es", ""),
    ("n-es-ingles", "need", "es", 3, "Necesito clases de inglés para una entrevista",
     "Entrevista de trabajo en dos semanas.", "ingles lang-es", ""),
    ("n-es-mudanza", "offer", "es", 5, "Furgoneta para mudanzas pequeñas",
     "Tengo una furgoneta y ayudo con mudanzas los domingos.", "mudanza lang-es", ""),
    ("n-es-senderismo", "offer", "es", 10, "Rutas de senderismo por la sierra",
     "Salidas los sábados, nivel medio.", "montana lang-es", ""),
]

# Siblings: records that share a hand-written record's place or subject but not the word a
# query is about, so that the query's other word alone can't find the right one.
SIBLING_TOPICS = {
    "en": ["Guitar lessons", "Painting workshop", "Dog walking", "Language exchange", "Cooking class",
           "Sewing help", "Photography walk", "Board games night"],
    "de": ["Malkurs", "Gitarrenunterricht", "Hundesitter", "Sprachcafé", "Kochkurs", "Nähhilfe",
           "Fotospaziergang", "Spieleabend"],
    "fr": ["Atelier peinture", "Cours de guitare", "Promenade de chiens", "Échange linguistique",
           "Cours de cuisine", "Aide couture", "Balade photo", "Soirée jeux"],
    "es": ["Taller de pintura", "Clases de piano", "Paseo de perros", "Intercambio de idiomas",
           "Clases de cocina", "Ayuda con costura", "Paseo fotográfico", "Noche de juegos"],
}
SIBLING_PLACES = [("Villeurbanne", "en"), ("Kreuzberg", "en"), ("Montmartre", "fr"), ("Ehrenfeld", "de"),
                  ("Croix-Rousse", "fr"), ("Belleville", "fr"), ("Triana", "es"), ("Malasaña", "es"),
                  ("Gràcia", "es"), ("Lavapiés", "es"), ("Schwabing", "de")]
PREP = {"en": "in", "de": "in", "fr": "à", "es": "en"}
SUBJECT_SIBLINGS = [
    # shares "mentor", "rust", "repair", "starter", "ramp", "audit"... with a hand-written one
    ("s-go-mentor", "offer", "en", "Go mentor for beginners", "Weekly calls to learn Go.", "go programming"),
    ("s-python-mentor", "offer", "en", "Python mentor for data science", "Pandas and notebooks.", "python"),
    ("s-rust-workshop", "offer", "en", "Rust workshop on Saturday", "Hands-on Rust for beginners.", "rust"),
    ("s-rust-meetup", "need", "en", "Rust meetup venue needed", "We are 30 people.", "rust"),
    ("s-rust-bike", "need", "en", "Rusty bike chain to replace", "The chain is all rust.", "bike"),
    ("s-starter-motor", "need", "en", "Car starter motor repair", "The starter clicks.", "car repair"),
    ("s-ramp-skate", "offer", "en", "Skate ramp to give away", "Wooden mini ramp.", "sport free"),
    ("s-audit-energy", "offer", "en", "Home energy audit", "I measure heat losses.", "house energy"),
    ("s-wiring-lamp", "need", "en", "Lamp wiring help", "Old lamp to rewire.", "house"),
    ("s-telescope-mirror", "need", "en", "Telescope mirror cleaning advice", "Dusty mirror.", "astronomy"),
    ("s-nights-out", "offer", "en", "Quiz nights at the pub", "Teams of four.", "fun"),
    ("s-tandem-bike", "offer", "en", "Tandem bike to lend", "A two-seat bicycle.", "bike"),
    ("s-cv-photo", "offer", "en", "CV photos for job seekers", "Portraits in daylight.", "photo jobs"),
    ("s-kayak-course", "need", "en", "Kayak course for a teenager", "Summer camp maybe.", "outdoor"),
    ("s-chess-online", "offer", "en", "Online chess coaching for adults", "Openings and endgames.", "chess"),
    ("s-oven-repair", "need", "en", "Oven repair needed", "The door does not close.", "house repair"),
    ("s-de-fahrrad-verkauf", "offer", "de", "Fahrrad zu verkaufen", "Damenrad, 28 Zoll.", "fahrrad lang-de"),
    ("s-de-kaffee", "offer", "de", "Kaffee rösten lernen", "Kleine Röstkurse.", "kaffee lang-de"),
    ("s-fr-velo-vente", "offer", "fr", "Vélo à vendre", "Vélo de ville, bon état.", "velo lang-fr"),
    ("s-fr-cafe-tricot", "offer", "fr", "Café tricot du jeudi", "On tricote ensemble.", "tricot lang-fr"),
    ("s-fr-oeuf", "need", "fr", "Cherche des boîtes à œufs", "Pour mes poules.", "jardin lang-fr"),
    ("s-es-bici-venta", "offer", "es", "Vendo bicicleta de montaña", "Talla M, buen estado.", "bicicleta lang-es"),
    ("s-es-guitarra-venta", "offer", "es", "Vendo guitarra española", "Con funda.", "guitarra lang-es"),
]


def siblings():
    out = []
    for place, lang in SIBLING_PLACES:
        topics = SIBLING_TOPICS[lang]
        for i, t in enumerate(topics):
            key = "s-%s-%d" % (place.lower().replace("à", "a").replace("ñ", "n").replace("é", "e")
                               .replace("è", "e"), i)
            kind = "offer" if i % 3 else "need"
            tags = ["lang-" + lang] if lang != "en" else []
            out.append((key, kind, lang, R.randint(0, 40), "%s %s %s" % (t, PREP[lang], place),
                        R.choice(SENTENCES[lang]), " ".join(tags), ""))
    for key, kind, lang, title, body, tags in SUBJECT_SIBLINGS:
        out.append((key, kind, lang, R.randint(0, 40), title, body, tags, ""))
    return out


# (query, flags, must, also)
Q = [
    # case, accents, ß
    ("CAFÉ philo", "", ["n-fr-cafe-philo"], []),
    ("cafe philo montmartre", "", ["n-fr-cafe-philo"], []),
    ("Café conversation English", "", ["n-cafe-english"], []),
    ("hauptstrasse zimmer", "", ["n-de-hauptstrasse"], []),
    ("HAUPTSTRASSE", "", ["n-de-hauptstrasse"], []),
    ("strassen fluss", "", ["n-de-gruss"], []),
    ("grusse grossstadt", "", ["n-de-gruss"], []),
    ("oeuvres musee", "", ["n-fr-oeuvre"], []),
    ("CRÈME BRÛLÉE", "", ["n-fr-creme-brulee"], []),
    ("creme brulee eclairs", "", ["n-fr-creme-brulee"], []),
    ("patisserie eclairs", "", ["n-fr-creme-brulee"], []),
    ("gracia ninos", "", ["n-es-canguro"], []),
    ("LAVAPIÉS huerto", "", ["n-es-huerto"], []),
    ("ehrenfeld fahrrader", "", ["n-de-fahrrad"], []),
    # plurals, inflections, stems
    ("CAFÉ montmartre", "", ["n-fr-cafe-philo"], []),
    ("Bicycles Villeurbanne", "", ["n-bike-villeurbanne"], ["n-bike-villeurbanne-old", "n-bike-need-villeurbanne"]),
    ("bicycle repairs villeurbanne", "", ["n-bike-villeurbanne"], ["n-bike-villeurbanne-old", "n-bike-need-villeurbanne"]),
    ("mentoring rust", "", ["n-rust-mentor"], ["n-rust-mentor-need"]),
    ("rust mentoring", "kind=offer", ["n-rust-mentor"], []),
    ("kayaking saone", "", ["n-kayak-lend"], []),
    ("beekeeper mentor", "", ["n-beekeeping"], []),
    ("printing 3d models", "", ["n-3d-printer"], []),
    ("freelancers taxes", "", ["n-tax-freelancer"], []),
    ("Fahrrad reparieren ehrenfeld", "", ["n-de-fahrrad"], []),
    ("Honig Imker", "", ["n-de-imkerei"], []),
    ("Lastenräder ausleihen", "", ["n-de-lastenrad"], []),
    ("stricken anfängerin", "", ["n-de-strickkurs"], []),
    ("école primaire soutien", "", ["n-fr-ecoles"], []),
    ("vélos croix-rousse", "", ["n-fr-velo-croix-rousse"], []),
    ("velo reparations croix-rousse", "", ["n-fr-velo-croix-rousse"], []),
    ("potagers belleville", "", ["n-fr-potager"], []),
    ("bicicletas triana", "", ["n-es-bicis"], []),
    ("huertos lavapies", "", ["n-es-huerto"], []),
    ("huertos urbanos", "", ["n-es-huerto"], []),
    ("guitarras malasana", "", ["n-es-guitarra"], []),
    ("guitarras flamencas", "", ["n-es-guitarra"], []),
    ("mudanza furgonetas", "", ["n-es-mudanza"], []),
    ("ruta senderismo sierra", "", ["n-es-senderismo"], []),
    ("children chess clubs", "", ["n-chess-kids"], []),
    ("lending lawnmowers", "", ["n-lawnmower"], []),
    ("violins repaired", "", ["n-violin-repair"], []),
    # typos
    ("mentr rust", "", ["n-rust-mentor"], ["n-rust-mentor-need"]),
    ("rsut mentor", "", ["n-rust-mentor"], ["n-rust-mentor-need"]),
    ("bicycle repiar villeurbane", "", ["n-bike-villeurbanne"], ["n-bike-villeurbanne-old", "n-bike-need-villeurbanne"]),
    ("ukulel kreuzberg", "", ["n-ukulele-offer"], ["n-ukulele-need"]),
    ("sourdogh starter", "", ["n-sourdough-starter"], []),
    ("telescop nights", "", ["n-telescope"], []),
    ("wheelchiar ramp", "", ["n-wheelchair-ramp"], []),
    ("accesibility audit", "", ["n-accessibility-audit"], []),
    ("electrican wiring", "", ["n-electrician"], []),
    ("Kaffeemaschine repariern", "", ["n-de-kaffeemaschine"], []),
    ("Geige gebraucht kind", "", ["n-de-geige"], []),
    ("machine a coudre", "", ["n-fr-couture"], []),
    ("paela valenciana", "", ["n-es-paella"], []),
    ("entrevista ingles clases", "", ["n-es-ingles"], []),
    ("beekeping hives", "", ["n-beekeeping"], []),
    ("translaton contracts german", "", ["n-translation-legal"], []),
    # intent, kinds, tags
    ("looking for ukulele lessons kreuzberg", "", ["n-ukulele-offer"], ["n-ukulele-need"]),
    ("ukulele kreuzberg", "kind=need", ["n-ukulele-need"], []),
    ("need a rust mentor", "", ["n-rust-mentor"], ["n-rust-mentor-need"]),
    ("bicycle villeurbanne", "kind=need", ["n-bike-need-villeurbanne"], []),
    ("bouldering partner", "kind=need", ["n-climbing-partner"], []),
    ("moving boxes", "tag=free", ["n-moving-boxes"], []),
    ("bread", "tag=baking", ["n-bread-oven"], ["n-sourdough-starter"]),
    ("suche umzugshelfer schwabing", "", ["n-de-umzug-schwabing"], []),
    ("cherche aide demenagement piano", "", ["n-fr-demenagement"], []),
    ("busco canguro gracia", "", ["n-es-canguro"], []),
    ("anglais lyceens bac", "", ["n-fr-anglais"], []),
    ("spanish tandem", "", ["n-spanish-tandem"], []),
    ("women tech mentoring", "", ["n-mentoring-women-tech"], []),
    ("cv cover letters", "", ["n-cv-review"], []),
    ("latein nachhilfe", "", ["n-de-nachhilfe-latein"], []),
    ("python debug", "", ["n-python-debug"], []),
    ("Umzugshelfer SCHWABING", "", ["n-de-umzug-schwabing"], []),
    ("ukulele teachers kreuzberg", "", ["n-ukulele-need", "n-ukulele-offer"], []),
    ("RUST MENTORS", "", ["n-rust-mentor", "n-rust-mentor-need"], []),
    ("repairing bicycles", "", ["n-bike-villeurbanne"], ["n-bike-villeurbanne-old", "n-bike-need-villeurbanne"]),
    ("tandem partners spanish", "", ["n-spanish-tandem"], []),
    ("starters sourdough", "", ["n-sourdough-starter"], []),
    ("wood fired oven", "", ["n-bread-oven"], []),
]


def clean(s):
    assert "\t" not in s and "\n" not in s, s
    return s


def main():
    recs = background(2000)
    # near-duplicates of hand-written records, in the background's words: other towns
    for i, (town, kind) in enumerate([("Lyon", "offer"), ("Grenoble", "offer"), ("Lyon", "need")]):
        recs.append(("b-dup-bike-%d" % i, kind, "en", 5 + i, "Bicycle repair in " + town,
                     "I fix flat tyres and brakes.", "bike repair", ""))
    recs.append(("b-dup-ukulele", "offer", "en", 30, "Guitar lessons in Kreuzberg",
                 "Acoustic guitar for beginners.", "music", ""))
    recs.append(("b-dup-rust", "offer", "en", 25, "Rust workshop for teams", "Two-day Rust training.",
                 "rust", ""))
    recs.append(("b-dup-cafe", "offer", "fr", 20, "Café tricot à Montmartre",
                 "On tricote autour d'un café.", "tricot lang-fr", ""))
    recs.append(("b-dup-hauptbahnhof", "need", "de", 4, "Suche Zimmer nahe Hauptbahnhof",
                 "Ab nächstem Monat.", "wohnen lang-de", ""))
    recs += siblings()
    recs += [n for n in N]
    keys = set()
    with open(os.path.join(HERE, "corpus.tsv"), "w", encoding="utf-8") as f:
        f.write("# key\tkind\tlang\tage_days\ttitle\tbody\ttags\tterms (written by gen.py)\n")
        for r in recs:
            assert r[0] not in keys, r[0]
            keys.add(r[0])
            f.write("\t".join(clean(str(x)) for x in r) + "\n")
    with open(os.path.join(HERE, "queries.tsv"), "w", encoding="utf-8") as f:
        f.write("# query\tflags\tmust be in the top 3\talso relevant (written by gen.py)\n")
        for q, flags, must, also in Q:
            for k in must + also:
                assert k in keys, k
            f.write("\t".join([clean(q), flags, " ".join(must), " ".join(also)]) + "\n")
    print("%d records, %d queries" % (len(recs), len(Q)))


if __name__ == "__main__":
    main()
