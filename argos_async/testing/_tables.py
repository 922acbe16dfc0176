"""The vocabulary of the synthetic data set: names, places, documents, reject and retry
codes, and the weights they are drawn with.

Order matters: the generator draws indexes into these tuples, so reordering or extending one
changes the data of every seed (tests/test_dataset.py pins it).
"""

from __future__ import annotations

from typing import Any

ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"


# name tables: (country name, male first names, female first names, last names)
COUNTRIES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "USA": (
        "United States",
        ("James", "Michael", "Robert", "David", "William", "Daniel", "Matthew", "Joshua"),
        ("Mary", "Jennifer", "Jessica", "Sarah", "Emily", "Ashley", "Olivia", "Madison"),
        ("Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson"),
    ),
    "GBR": (
        "United Kingdom",
        ("Oliver", "George", "Harry", "Jack", "Thomas", "Oscar", "Charlie", "Alfie"),
        ("Amelia", "Isla", "Ava", "Poppy", "Sophie", "Grace", "Lily", "Freya"),
        ("Taylor", "Evans", "Walker", "Wright", "Roberts", "Hughes", "Clarke", "Turner"),
    ),
    "CAN": (
        "Canada",
        ("Liam", "Noah", "Logan", "Ethan", "Lucas", "Owen", "Nathan", "Samuel"),
        ("Emma", "Charlotte", "Chloe", "Zoe", "Hannah", "Abigail", "Maya", "Leah"),
        ("Tremblay", "Gagnon", "Roy", "Campbell", "MacDonald", "Bouchard", "Martin", "Lee"),
    ),
    "KOR": (
        "South Korea",
        ("Minjun", "Seojun", "Doyun", "Jiho", "Hyunwoo", "Junseo", "Taeyang", "Jaewon"),
        ("Seoyeon", "Jiwoo", "Haeun", "Minseo", "Yuna", "Soyeon", "Jiyoung", "Eunji"),
        ("Kim", "Lee", "Park", "Choi", "Jung", "Kang", "Cho", "Yoon"),
    ),
    "JPN": (
        "Japan",
        ("Haruto", "Sota", "Yuto", "Hiroshi", "Takumi", "Ren", "Kaito", "Daiki"),
        ("Yui", "Hina", "Aoi", "Sakura", "Yuki", "Mio", "Rin", "Akari"),
        ("Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura"),
    ),
    "BRA": (
        "Brazil",
        ("Joao", "Pedro", "Lucas", "Gabriel", "Rafael", "Mateus", "Gustavo", "Felipe"),
        ("Ana", "Maria", "Juliana", "Beatriz", "Larissa", "Camila", "Fernanda", "Leticia"),
        ("Silva", "Santos", "Oliveira", "Souza", "Pereira", "Costa", "Rodrigues", "Almeida"),
    ),
    "PRT": (
        "Portugal",
        ("Tiago", "Duarte", "Goncalo", "Rodrigo", "Francisco", "Martim", "Diogo", "Tomas"),
        ("Ines", "Mariana", "Catarina", "Leonor", "Matilde", "Rita", "Sofia", "Carolina"),
        ("Silva", "Ferreira", "Martins", "Sousa", "Goncalves", "Ribeiro", "Lopes", "Marques"),
    ),
    "ESP": (
        "Spain",
        ("Alejandro", "Pablo", "Javier", "Sergio", "Alvaro", "Adrian", "Hugo", "Manuel"),
        ("Lucia", "Paula", "Laura", "Marta", "Elena", "Carmen", "Alba", "Irene"),
        ("Garcia", "Fernandez", "Gonzalez", "Lopez", "Martinez", "Sanchez", "Perez", "Gomez"),
    ),
    "MEX": (
        "Mexico",
        ("Santiago", "Diego", "Emiliano", "Jose", "Luis", "Carlos", "Miguel", "Jorge"),
        ("Ximena", "Valentina", "Regina", "Daniela", "Guadalupe", "Andrea", "Fernanda", "Sofia"),
        ("Hernandez", "Garcia", "Martinez", "Lopez", "Gonzalez", "Ramirez", "Flores", "Cruz"),
    ),
    "DEU": (
        "Germany",
        ("Lukas", "Leon", "Finn", "Jonas", "Felix", "Maximilian", "Paul", "Moritz"),
        ("Mia", "Hannah", "Lea", "Lena", "Anna", "Laura", "Johanna", "Clara"),
        ("Muller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker"),
    ),
    "FRA": (
        "France",
        ("Gabriel", "Louis", "Arthur", "Jules", "Hugo", "Theo", "Nathan", "Antoine"),
        ("Louise", "Jade", "Camille", "Manon", "Chloe", "Ines", "Lea", "Julie"),
        ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand"),
    ),
    "IND": (
        "India",
        ("Aarav", "Vihaan", "Arjun", "Rohan", "Rahul", "Aditya", "Karan", "Vikram"),
        ("Priya", "Ananya", "Diya", "Isha", "Kavya", "Neha", "Pooja", "Sneha"),
        ("Sharma", "Patel", "Singh", "Kumar", "Gupta", "Reddy", "Iyer", "Nair"),
    ),
    "VNM": (
        "Vietnam",
        ("Minh", "Huy", "Khang", "Bao", "Phuc", "Quang", "Tuan", "Long"),
        ("Linh", "Trang", "Huong", "Mai", "Ngoc", "Thao", "Lan", "Vy"),
        ("Nguyen", "Tran", "Le", "Pham", "Hoang", "Vu", "Dang", "Bui"),
    ),
    "PHL": (
        "Philippines",
        ("Jose", "Mark", "John", "Carlo", "Miguel", "Paolo", "Rafael", "Angelo"),
        ("Maria", "Angel", "Princess", "Kristine", "Joy", "Camille", "Nicole", "Andrea"),
        ("Santos", "Reyes", "Cruz", "Bautista", "Garcia", "Mendoza", "Dela Cruz", "Ramos"),
    ),
    "NGA": (
        "Nigeria",
        ("Chinedu", "Emeka", "Oluwaseun", "Tunde", "Ibrahim", "Chukwudi", "Femi", "Musa"),
        ("Ngozi", "Chioma", "Aisha", "Funmilayo", "Adaeze", "Blessing", "Amaka", "Zainab"),
        ("Okafor", "Adeyemi", "Okonkwo", "Bello", "Eze", "Olawale", "Nwosu", "Abubakar"),
    ),
}
# Weighted so the customer base looks like a real (Korea-based) provider's.
NATIONALITY_WEIGHTS = {
    "KOR": 18, "USA": 14, "GBR": 6, "CAN": 4, "JPN": 7, "BRA": 7, "PRT": 3, "ESP": 4,
    "MEX": 5, "DEU": 5, "FRA": 5, "IND": 8, "VNM": 6, "PHL": 5, "NGA": 3,
}  # fmt: skip
NATIONALITIES = tuple(c for c, w in NATIONALITY_WEIGHTS.items() for _ in range(w))

ADDRESSES: dict[str, tuple[tuple[str, str, str, str, str], ...]] = {
    # (city, state, street, zipcode, plus code)
    "USA": (
        ("Washington", "DC", "1600 Pennsylvania Ave NW", "20500", "87C4VXX7+39"),
        ("Austin", "TX", "500 E Cesar Chavez St", "78701", "8625662F+X4"),
    ),
    "KOR": (
        ("Seoul", "Seoul", "110 Sejong-daero, Jung-gu", "04524", "8Q98HXPG+MP"),
        ("Busan", "Busan", "55 Jungang-daero, Dong-gu", "48731", "8Q7XJFRF+7C"),
    ),
    "GBR": (("London", "England", "10 Downing St", "SW1A 2AA", "9C3XGV4C+GH"),),
    "BRA": (("Sao Paulo", "SP", "Av. Paulista, 1578", "01310-200", "588MC974+FC"),),
    "JPN": (("Tokyo", "Tokyo", "1-1 Chiyoda, Chiyoda-ku", "100-8111", "8Q7XMPHQ+4J"),),
    "IND": (("Mumbai", "Maharashtra", "Marine Drive, Churchgate", "400020", "7JFJ3RXC+9V"),),
    "DEU": (("Berlin", "Berlin", "Platz der Republik 1", "11011", "9F4MGC82+Q5"),),
    "MEX": (("Ciudad de Mexico", "CDMX", "Av. Juarez 2, Centro", "06050", "76F2CRJF+25"),),
}

ID_TYPES: dict[str, tuple[str, ...]] = {
    "USA": ("drivers_license", "drivers_license", "passport", "government_id"),
    "CAN": ("drivers_license", "passport", "government_id"),
    "MEX": ("government_id", "passport", "drivers_license"),
    "KOR": ("government_id", "government_id", "drivers_license", "passport"),
    "IND": ("aadhaar", "aadhaar", "pancard", "passport"),
}
ID_TYPES_OTHER = (
    "passport", "passport", "government_id", "drivers_license", "residence_permit", "visa",
    "government_id", "vehicle_registration_certificate",
)  # fmt: skip
ACCEPTED_IDS = (
    "government_id", "passport", "drivers_license", "vehicle_registration_certificate",
    "aadhaar", "residence_permit", "pancard", "visa",
)  # fmt: skip

# (commentCode, comment) as the API sends them, trailing space included where documented.
REJECTS: tuple[tuple[str, str], ...] = (
    ("too_many_retry", "Multiple invalid KYC attempts "),
    ("too_many_retry", "Multiple invalid KYC attempts "),
    ("too_many_retry", "Multiple invalid KYC attempts "),
    ("too_many_retry", "Multiple invalid KYC attempts"),
    ("timeout", "KYC rejected due to timeout"),
    ("timeout", "KYC rejected due to timeout"),
    (
        "id_image_invalidImage",
        "ID document not detected. Please take a picture of your ID document.",
    ),
    ("id_image_invalidId", "Invalid ID document. Please resubmit with another ID document."),
    ("id_image_error", "Fail to upload the ID image. Please resubmit the KYC process."),
    (
        "id_image_badImage",
        "Fail to read the ID image. Please take a clear picture of your ID document.",
    ),
    ("id_info_dataMismatch", "The entered information does not match with your ID document."),
    (
        "invalid_acceptedID",
        "Inacceptable ID type. Please resubmit with another ID, check the valid ID on the "
        "submission page.",
    ),
    ("under_ageLimit", "We do not accept KYC anyone under 13 years old."),
    ("id_info_notOfAge", "We do not accept KYC anyone under 13 years old."),
    ("duplicate_user", "A user has been duplicated as a result of identification."),
    (
        "duplicated_user_PII_exact",
        "A user's personal identity information has been duplicated as a result of identification.",
    ),
    ("duplicated_face", "A duplicate user has been identified through face matching."),
    ("no-date-of-birth", "There is no date of birth information on the ID."),
    ("expired_id", "ID cards have already expired."),
    (
        "automatic_verification_fail",
        "Verification failed - submitted data didn't meet quality requirements.",
    ),
    (
        "address_image_invalidImage",
        "Invalid proof of address. Proof of address must include your full name and "
        "address. ex)utility bill, bank statement, residency certificate, etc.",
    ),
    (
        "address_image_badImage",
        "Fail to read the image. Please take a clear picture of your proof of address.",
    ),
    (
        "address_info_expiredDocument",
        "Expired proof of address. The proof of address should be issued within 6 months.",
    ),
    ("address_info_dataMismatch", "Entered information does not match with your proof of address."),
)
BLACKLIST_COMMENT = "According to the policy, we do not accept KYC from {}."
AGENT_COMMENTS = (
    "test",
    "Selfie does not match the ID photo",
    "ID document appears to be a screenshot",
    "Document photo is blurred, please resubmit",
    "Name on the ID does not match the entered name",
)
RETRIES: tuple[tuple[str, str], ...] = (
    ("face_compare_fail", "Face compare failed: no matching face"),
    ("face_compare_underscore", "The face doesn't match. Please retry with another face image."),
    ("liveness_error", "Liveness fail: Face is too close to one or more borders. Please retry."),
    ("liveness_error", "Liveness fail: Absolute face size is too small. Please retry."),
    ("mrz_protocol_fail", "Failed to detect full MRZ."),
)
BARCODE_RETRY = ("barcode_protocol_fail", "Failed to read PDF417 Barcode.")
BARCODE_COUNTRIES = frozenset({"USA", "CAN", "MEX"})
ORDINALS = ("1st", "2nd", "3rd")
IP_PREFIXES = ("203.0.113.", "198.51.100.", "192.0.2.")
DOMAINS = ("example.com", "example.com", "example.org", "example.net")
MEMOS = (
    "Called the applicant to confirm the address",
    "Re-checked the ID photo manually",
    "VIP customer, priority review",
    "Escalated to compliance",
)
# approved 60 %, rejected 20 %, pending 10 %, incomplete 10 %
RESULTS = ("approved",) * 6 + ("rejected",) * 2 + ("pending", "incomplete")
OPTION_SETS: tuple[dict[str, Any], ...] = tuple(
    {
        "option_aml": aml,
        "option_addressData": addr,
        "policy_approvePeriod": period,
        "option_idNumber": True,
        "policy_blacklistCountries": list(black),
        "policy_acceptedID": list(ACCEPTED_IDS[:k]),
    }
    for aml in (True, False)
    for addr in (False, True)
    for period, black, k in ((0, (), 8), (30, ("PRK", "IRN"), 5))
)
BANKS = ("004", "011", "020", "088", "090")

HEAVY_EMAIL = "kyc.qa+regression@example.com"
HEAVY_USERIDS = ("qa_runner_1", "qa_runner_2", "qa_runner_3")
